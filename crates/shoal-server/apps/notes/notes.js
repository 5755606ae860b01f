// The notes: each is a record of the collection "notes" with the fields
// `title`, `body` and `updated_at` (milliseconds since 1970). This module
// lists, creates, edits and deletes them through shoal-web's collection
// API and draws them. It redraws on the store's change feed, so notes that
// arrive from other peers appear without a reload.

const form = document.getElementById('editor');
const editorTitle = document.getElementById('editor-title');
const cancel = document.getElementById('cancel-edit');
const list = document.getElementById('note-list');
const count = document.getElementById('note-count');
const empty = document.getElementById('no-notes');

/** Every live note, through the paged list (100 a page). */
async function allNotes(notes) {
  const all = [];
  let after;
  for (;;) {
    const page = await notes.list({ after, limit: 100 });
    all.push(...page.records);
    if (!page.next) return all;
    after = page.next;
  }
}

/** A new note's id: random, so two peers writing offline never collide. */
function newId() {
  return `note-${crypto.randomUUID()}`;
}

/** Puts the form back to "new note". */
function resetForm() {
  form.reset();
  form.elements.id.value = '';
  editorTitle.textContent = 'New note';
  cancel.hidden = true;
}

/** Loads a note into the form for editing. */
function editNote(record) {
  form.elements.id.value = record.id;
  form.elements.title.value = record.value.title || '';
  form.elements.body.value = record.value.body || '';
  editorTitle.textContent = 'Edit note';
  cancel.hidden = false;
  form.elements.title.focus();
}

/** One note's list item: title, text, Edit and Delete. */
function noteItem(record, notes) {
  const item = document.createElement('li');
  item.dataset.id = record.id;
  item.dataset.testid = 'note';
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = record.value.title || '(untitled)';
  const body = document.createElement('p');
  body.className = 'body';
  body.textContent = record.value.body || '';
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  const edit = document.createElement('button');
  edit.type = 'button';
  edit.textContent = 'Edit';
  edit.dataset.testid = 'edit-note';
  edit.addEventListener('click', () => editNote(record));
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.textContent = 'Delete';
  remove.dataset.testid = 'delete-note';
  // A delete is a tombstone that syncs like any write.
  remove.addEventListener('click', () => notes.delete(record.id).catch(showError));
  buttons.append(edit, remove);
  item.append(title, body, buttons);
  return item;
}

/** Redraws the list, newest first. */
async function render(notes) {
  const records = await allNotes(notes);
  records.sort((a, b) => (b.value.updated_at || 0) - (a.value.updated_at || 0));
  list.replaceChildren(...records.map((record) => noteItem(record, notes)));
  count.textContent = String(records.length);
  empty.hidden = records.length > 0;
}

function showError(error) {
  const state = document.getElementById('store-state');
  state.dataset.state = 'failed';
  state.textContent = `${error.code || 'error'}: ${error.message}`;
}

/** Wires the form and the list to the `notes` collection of `store`. */
export async function startNotes(notes, store) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const id = form.elements.id.value;
    const fields = {
      title: form.elements.title.value.trim(),
      body: form.elements.body.value,
      updated_at: Date.now(),
    };
    try {
      // Each write resolves once it is durable in this browser's store.
      if (id) {
        // patch sets only these fields: a concurrent edit of another field
        // on another peer is kept (the merge is field by field).
        await notes.patch(id, fields);
      } else {
        await notes.create(newId(), fields);
      }
      resetForm();
    } catch (error) {
      showError(error);
    }
  });
  cancel.addEventListener('click', resetForm);

  // Redraw on every change, local or from a peer (a burst of changes during
  // a sync redraws once).
  let pending = false;
  store.subscribe((change) => {
    if (change.collection !== 'notes' || pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      render(notes).catch(showError);
    }, 50);
  });
  await render(notes);
  form.querySelector('[type="submit"]').disabled = false;
}
